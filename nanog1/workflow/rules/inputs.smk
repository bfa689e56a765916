# Where the mutations come from: the simulator (a checkpoint: its file list is known only once it
# has run) or the user's files from the config. Either way the inputs are split into parts, one
# ingest job per part, each part one file by default (`ingest.files_per_job`).
import re
from glob import glob

MODE = config["input"]["mode"]
SIM = out("sim")
_DATA_SUFFIXES = (".vcf", ".vcf.gz", ".bcf", ".maf", ".maf.gz", ".txt", ".csv", ".tsv")


if MODE == "simulate":

    checkpoint simulate:
        output:
            directory(SIM),
        params:
            n=config["input"]["simulate"]["n_samples"],
            types=[arg for t in (config["input"]["simulate"]["cancer_types"] or []) for arg in ("--type", t)],
            maf=config["input"]["simulate"]["maf_fraction"],
            burden=config["input"]["simulate"]["burden_scale"],
            extra=EXTRA["simulate"],
            seed=SEED,
        log:
            logfile("simulate"),
        benchmark:
            bench("simulate")
        shell:
            "{NANOG1:q} simulate {output:q} --n-samples {params.n:q} --maf-fraction {params.maf:q}"
            " --burden-scale {params.burden:q} --seed {params.seed:q} {params.types:q} {params.extra:q}"
            " --catalogues {output:q}/truth.h5ad > {log:q} 2>&1"


def _part_name(path, taken):
    """A wildcard-safe, unique name for one input file (its name without the data suffixes)."""
    name = Path(path).name
    for suffix in sorted(_DATA_SUFFIXES, key=len, reverse=True):
        name = name.removesuffix(suffix)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "part"
    unique, i = name, 1
    while unique in taken:
        unique, i = f"{name}.{i}", i + 1
    return unique


def input_files():
    """The input data files, in a stable order (after the simulator has run, in simulate mode)."""
    if MODE == "simulate":
        sim = checkpoints.simulate.get().output[0]
        return sorted(glob(f"{sim}/vcf/*.vcf*")) + sorted(glob(f"{sim}/*.maf*"))
    return list(config["input"]["files"])


def parts():
    """{part name: [files]}: one ingest job per part."""
    files, size = input_files(), config["ingest"]["files_per_job"]
    if size == 1:
        taken = {}
        for f in files:
            taken[_part_name(f, taken)] = [f]
        return taken
    return {f"part{i // size:05d}": files[i : i + size] for i in range(0, len(files), size)}


def reference(wildcards=None):
    if MODE == "simulate":
        return f"{checkpoints.simulate.get().output[0]}/genome.fa"
    return config["input"]["reference"] or []


def sample_sheet(wildcards=None):
    if MODE == "simulate":
        return f"{checkpoints.simulate.get().output[0]}/samples.csv"
    return config["input"]["samples"] or []
