"""What the Models page can show: is the text LM / vision encoder built, and is a checkpoint configured?

The Models page stays an honest status board until `nanog1.zoo.text` and `nanog1.zoo.vision`
exist. Whoever builds them completes the page by giving each module a `load_checkpoint(path)`
function; this module only finds them and says precisely what is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

#: The function each model module must expose for the dashboard to load a checkpoint.
LOADER = "load_checkpoint"


@dataclass(frozen=True)
class ModelStatus:
    """Availability of one model family in this installation and session."""

    family: str
    module: str
    module_found: bool
    checkpoint: Path | None
    checkpoint_found: bool

    @property
    def ready(self) -> bool:
        """True when the module exists and the configured checkpoint file is there."""
        return self.module_found and self.checkpoint_found

    def missing(self) -> str:
        """One sentence naming what is missing, or '' when ready."""
        if not self.module_found:
            return f"the module `{self.module}` is not in this installation yet"
        if self.checkpoint is None:
            return f"no {self.family} checkpoint is configured"
        if not self.checkpoint_found:
            return f"the {self.family} checkpoint {self.checkpoint} does not exist"
        return ""


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def model_status(family: str, module: str, checkpoint: Path | None) -> ModelStatus:
    """Status of one model family (`family` is a display name such as 'text LM')."""
    return ModelStatus(
        family=family,
        module=module,
        module_found=_module_exists(module),
        checkpoint=checkpoint,
        checkpoint_found=checkpoint is not None and Path(checkpoint).is_file(),
    )


def load_model(status: ModelStatus):
    """Load a ready model through its module's `load_checkpoint(path)`; AttributeError if not defined."""
    mod = importlib.import_module(status.module)
    loader = getattr(mod, LOADER, None)
    if loader is None:
        raise AttributeError(f"`{status.module}` has no `{LOADER}(path)` function for the dashboard")
    return loader(status.checkpoint)
