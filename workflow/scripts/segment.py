import json

from _common import start

log = start(snakemake)  # noqa: F821


from cry_diffusion import atomic, ingest, segment  # noqa: E402

out = snakemake.output  # noqa: F821
params = segment.SegmentParams.from_dict(snakemake.params.segment)  # noqa: F821
manifest = ingest.read_manifest(snakemake.input[0])  # noqa: F821
regions = snakemake.params.kind != "folder"  # noqa: F821
table, summary = segment.segment_manifest(manifest, params, out.npy, workers=snakemake.threads, regions=regions)  # noqa: F821
log.info("%d segments of %s s; accounting %s", len(table), params.seconds, summary)
segment.require_training_segments(snakemake.wildcards.dataset, manifest, table)  # noqa: F821
with atomic.atomic_path(out.table) as tmp:
    table.to_csv(tmp, index=False)
atomic.write_text(out.summary, json.dumps(summary, indent=2))
