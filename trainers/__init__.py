"""Entry points: `python -m trainers.run --gin_config=lars_hvae.gin --workdir=runs/x`."""
