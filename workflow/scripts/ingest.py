from _common import start

log = start(snakemake)  # noqa: F821

from cry_diffusion import atomic, ingest  # noqa: E402

p = snakemake.params  # noqa: F821
manifest = ingest.build_manifest(
    p.root,
    ingest.params_from(p.ingest),
    category_from=p.category.get("from", "folder"),
    pattern=p.category.get("pattern"),
    workers=snakemake.threads,  # noqa: F821
)
for row in manifest[manifest["status"] != "ok"].itertuples():
    log.warning("%s %s: %s", row.status, row.path, row.reason)
log.info("%d files: %s", len(manifest), manifest["status"].value_counts().to_dict())
with atomic.atomic_path(snakemake.output[0]) as tmp:  # noqa: F821
    manifest.to_csv(tmp, index=False)
