"""Write each statemachine/*.asl.json with its DefinitionSubstitutions filled by stand-in values (the ARNs CloudFormation
would put there), for tools that check a definition as AWS receives it: `python -m tests.template.render_asl OUTDIR`."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.template._support import ASL_FILES, rendered


def main(out: str) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for path in ASL_FILES:
        (folder / path.name).write_text(rendered(path))


if __name__ == "__main__":
    main(sys.argv[1])
