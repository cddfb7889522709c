"""Grouping a Dask DataFrame partition by partition, on as many workers as the cluster has.

    >>> import dask.dataframe as dd, nordgroup.dask     # doctest: +SKIP
    >>> episodes = dd.read_parquet("episodes/")          # doctest: +SKIP
    >>> groups = nordgroup.dask.group(episodes, "DefinitionData_NOR_2017_PR1aN.zip")  # doctest: +SKIP
    >>> groups.to_parquet("groups/")                     # doctest: +SKIP

Dask does the scheduling; this module only says what one partition becomes: the rows of
`Grouper.group`, in the partition's order, with its index. Each worker process builds its
`Grouper` once and keeps it for every partition it gets: from the table cache when `tables` is a
path, or from the one copy of a `DrgTables` object that Dask ships to each worker. Needs the
`nordgroup[dask]` extra.

The code lists must reach Dask as lists: read Parquet with `dtype_backend="pyarrow"`, or make
pandas frames with `table.to_pandas(types_mapper=pd.ArrowDtype)`. Plain object columns of lists
are turned into their text by Dask's string conversion (`dataframe.convert-string`), and would
group as unknown codes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from nordgroup._memo import per_object
from nordgroup.engine.grouper import Grouper
from nordgroup.tables.load import load_tables
from nordgroup.tables.model import DrgTables

__all__ = ["group"]


def group(episodes: dd.DataFrame, tables: DrgTables | str | os.PathLike[str]) -> dd.DataFrame:
    """The grouping of every partition of `episodes` (canonical columns, see `nordgroup.episodes`).

    `tables` is a path of the tables (each worker loads them once, through the table cache) or a
    loaded `DrgTables` (sent once to each worker). Returns a Dask DataFrame with the columns of
    `Grouper.group`, the episode ids and each partition's rows and index kept."""
    if isinstance(tables, DrgTables):
        local = _grouper_of(tables)
        source: Any = dask.delayed(tables, pure=True)  # one task: computed once, shipped once per worker
    else:
        source = str(Path(tables).resolve())
        local = _grouper_at(source)
    meta = _group_partition(episodes._meta, local)
    return episodes.map_partitions(_group_partition_with, source, meta=meta, align_dataframes=False)


def _group_partition_with(partition: pd.DataFrame, source: DrgTables | str) -> pd.DataFrame:
    grouper = _grouper_at(source) if isinstance(source, str) else _grouper_of(source)
    return _group_partition(partition, grouper)


def _group_partition(partition: pd.DataFrame, grouper: Grouper) -> pd.DataFrame:
    # Arrow-backed columns (pd.ArrowDtype): the code lists stay lists, which Dask's string
    # conversion would turn into their text for plain object columns
    # one kernel thread per task: Dask's worker threads and processes are the parallelism
    table = grouper.group(partition.reset_index(drop=True), parallel=False)
    result = table.to_pandas(types_mapper=pd.ArrowDtype)
    result.index = partition.index
    return result


#: How many groupers this process built: one per table set, whatever the number of partitions.
groupers_built = 0


def _new_grouper(tables: DrgTables) -> Grouper:
    global groupers_built
    groupers_built += 1
    return Grouper(tables)


@functools.cache
def _grouper_at(path: str) -> Grouper:
    """This process' grouper for the tables at `path`: loaded once per worker, from the cache."""
    return _new_grouper(load_tables(path, cache=True))


_grouper_of = per_object(_new_grouper)  # one per DrgTables object a worker holds
