"""README and docs work from a plain clone: every relative link points at a file in the repository."""

import re

from .procs import REPO

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_links_in_readme_and_docs_stay_inside_the_repository_and_exist():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # web addresses and anchors
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(REPO.resolve()), f"{page.name} links outside the repository: {target}"
            assert path.exists(), f"{page.name} links to a missing file: {target}"
            checked += 1
    assert checked >= 5
