"""Only the build step pyproject.toml cannot say: the package carries the handbook for the secretariat.

docs/handleiding.md (and its screenshots) is written once, in docs/; building the package copies it into
newsletter_cli/handbook/ so that `newsletter handbook` finds it in an installed program.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DOCS = Path(__file__).resolve().parent / "docs"


class BuildWithHandbook(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "newsletter_cli" / "handbook"
        (target / "screenshots").mkdir(parents=True, exist_ok=True)
        self.copy_file(str(DOCS / "handleiding.md"), str(target / "handleiding.md"))
        for image in sorted((DOCS / "screenshots").glob("*.png")):
            self.copy_file(str(image), str(target / "screenshots" / image.name))


setup(cmdclass={"build_py": BuildWithHandbook})
