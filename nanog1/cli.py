"""The one command-line entry, `nanog1 …`.

Each sub-command imports its heavy modules lazily so that `nanog1 --help` stays fast.
Areas add their commands in their own section below.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="nanog1",
    help="NanoG1: VCF/MAF cohorts to mutational catalogues, signatures and Q-Compass encoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


# --- general -------------------------------------------------------------------------------------
@app.command()
def info() -> None:
    """Print versions, the compute device and which fused attention kernels are available."""
    import platform

    import torch

    import nanog1

    typer.echo(f"nanog1 {nanog1.__version__}  python {platform.python_version()}  torch {torch.__version__}")
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    typer.echo(f"device: {device}  threads: {torch.get_num_threads()}")
    if cuda:
        flags = {
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "math": torch.backends.cuda.math_sdp_enabled(),
        }
        typer.echo("SDPA backends enabled: " + ", ".join(k for k, v in flags.items() if v))


@app.command()
def demo() -> None:
    """Run the main job on the embedded default data (see README)."""
    info()


# --- genomics: ingest --------------------------------------------------------------------------
# (section owned by the genomics: ingest area; add commands here)


# --- signatures and simulate -------------------------------------------------------------------
# (section owned by the signatures and simulate area; add commands here)


# --- training: train, evaluate, embed ----------------------------------------------------------
# (section owned by the training: train, evaluate, embed area; add commands here)


# --- lm and vision -----------------------------------------------------------------------------
# (section owned by the lm and vision area; add commands here)


# --- pipeline ----------------------------------------------------------------------------------
# (section owned by the pipeline area; add commands here)


# --- app ---------------------------------------------------------------------------------------
# (section owned by the app area; add commands here)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
