"""Process A of the lineage tests: a Dask, memo and Prefect pipeline on its own store and
a shared zone (both from the environment). Prints the URIs it made as JSON."""

from __future__ import annotations

import hashlib
import json

import dask.array as da
import distributed
from pipeline_funcs import smooth, summarize_fn
from prefect import flow
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from kachery_flows.codecs import encode_json
from kachery_flows.dask import KacheryPlugin, from_kachery, to_kachery
from kachery_flows.prefect import kachery_task

summarize = kachery_task(summarize_fn)


@flow
def pipeline(filtered, raw):  # type: ignore[no-untyped-def]
    return summarize(filtered, raw)


if __name__ == "__main__":
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.register_plugin(KacheryPlugin())
        base = to_kachery(da.arange(400.0, chunks=100), label="base")
        raw = to_kachery(from_kachery(base) * 2.0, label="raw")
    filtered = smooth.ref(raw, 5)
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        summary = pipeline(filtered, raw)
    # the serializer stored the summary as canonical JSON: its hash is the result's
    summary_sha1 = hashlib.sha1(encode_json(summary)).hexdigest()
    print(
        json.dumps(
            {
                "base": base.sha1,
                "raw": raw.sha1,
                "filtered": filtered.sha1,
                "summary": summary_sha1,
                "key": smooth.key(raw, 5),
            }
        )
    )
