"""Every Markdown table in the given files renders as a table.

A table row the renderer does not take as part of a table (after a blank line that ended the
table, or with a broken separator row) shows as a paragraph of raw `|` characters; this
finds such rows with markdown-it-py, the CommonMark renderer with GitHub's tables.
Usage: python3 .ci/check_tables.py README.md benches/README.md ...
"""

import sys

from markdown_it import MarkdownIt


def stray_rows(text: str) -> list[int]:
    """Line numbers (1-based) of table-like rows outside every rendered table."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    in_table = set()
    in_code = set()
    for token in tokens:
        if token.map is None:
            continue
        lines = range(token.map[0], token.map[1])
        if token.type == "table_open":
            in_table.update(lines)
        elif token.type in ("fence", "code_block", "html_block"):
            in_code.update(lines)
    return [
        n + 1
        for n, line in enumerate(text.splitlines())
        if line.lstrip().startswith("|") and n not in in_table and n not in in_code
    ]


def main() -> int:
    failed = False
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            for line in stray_rows(f.read()):
                print(f"{path}:{line}: a table row that does not render as part of a table")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
