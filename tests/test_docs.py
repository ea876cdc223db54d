"""The README stays a short entry point and every relative link in it and
in docs/ leads somewhere."""
import glob
import os.path as osp
import re

import pytest

from helpers import REPO

PAGES = [osp.join(REPO, 'README.md')] + sorted(
    glob.glob(osp.join(REPO, 'docs', '*.md')))
LINK = re.compile(r'\]\(([^)\s]+)\)')


def test_readme_is_short():
    with open(osp.join(REPO, 'README.md')) as f:
        assert len(f.readlines()) <= 250


def _anchors(path):
    """GitHub's heading anchors of a Markdown file."""
    with open(path) as f:
        headings = [line.lstrip('#').strip() for line in f
                    if line.startswith('#')]
    return {re.sub(r'[^\w\- ]', '', h.lower()).replace(' ', '-')
            for h in headings}


@pytest.mark.parametrize('page', PAGES, ids=lambda p: osp.relpath(p, REPO))
def test_relative_links_resolve(page):
    with open(page) as f:
        text = f.read()
    broken = []
    for target in LINK.findall(text):
        if '://' in target or target.startswith('mailto:'):
            continue
        path, _, anchor = target.partition('#')
        file = osp.normpath(osp.join(osp.dirname(page), path)) if path \
            else page
        if not osp.exists(file):
            broken.append(target)
        elif anchor and file.endswith('.md') and \
                anchor not in _anchors(file):
            broken.append(target)
    assert not broken, f'{osp.relpath(page, REPO)}: {broken}'
