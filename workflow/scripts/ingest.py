from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion import atomic, ingest, ingest_source  # noqa: E402

p = snakemake.params  # noqa: F821
manifest = ingest.build_manifest(ingest_source.source_from(p.source), ingest.IngestParams.from_dict(p.ingest),
                                 workers=snakemake.threads)  # noqa: F821
for row in manifest[manifest["status"] != "ok"].itertuples():
    log.warning("%s %s %s: %s", row.status, row.row, row.relpath, row.reason)
log.info("%d rows: %s", len(manifest), manifest.groupby(["row", "status"]).size().to_dict())
with atomic.atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    manifest.to_csv(tmp, index=False)
