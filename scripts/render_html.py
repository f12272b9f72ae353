"""Render the course as a static site in build/html/ that works with no network (``make html``).

Every page is self-contained on disk:

* the lessons (``notebooks/NN-*.ipynb``) and the exercises' student release
  (``notebooks/exercises/release/``), rendered by nbconvert with their stored
  outputs, links between notebooks turned into links between pages, and a
  navigation bar on every page;
* widgets with their saved state: the lessons that show widgets are executed
  here, in a temporary copy (the committed lessons store no widget state, on
  purpose), so the frame explorer, the chat windows and the traffic log show
  what Run All left in them; a widget that links to a lesson's local server
  (gone once the lesson stops) shows its "run this cell" text instead;
* the Jupyter widgets HTML manager, require.js and anywidget's front end
  (the chat's text box is an anywidget ES module) are fetched once from the
  npm registry (``npm pack``, cached in ``build/npm/``) and copied into
  ``_static/``; no page loads anything from a CDN. MathJax and mermaid are not
  needed (no lesson has LaTeX or mermaid; a lesson that does makes the build
  stop with a message, rather than rendering a page that needs the network).

Usage::

    .venv/bin/python scripts/render_html.py [--out build/html] [--no-execute]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import jinja2
import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RELEASE = NOTEBOOKS / "exercises" / "release"
NPM_CACHE = ROOT / "build" / "npm"
STATIC = "_static"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

#: The front-end packages a page with widgets needs, and the files of each it uses.
#: html-manager 1.0.x is the static counterpart of ipywidgets 8.1 (base 6, controls 5);
#: anywidget's front end must match the Python package's version (its model module).
NPM_PACKAGES: dict[str, tuple[str, str]] = {
    "requirejs": ("2.3.7", "require.js"),
    "@jupyter-widgets/html-manager": ("1.0.15", "dist/embed-amd.js"),
    "anywidget": (anywidget.__version__, "dist/index.js"),
}

#: The manager's files a page does not load (other bundles of the same code, source maps).
BUNDLED = ("embed.js*", "libembed-amd.js", "*.map")

#: A relative link to a notebook, in markdown ``](x.ipynb#a)`` or HTML ``href="x.ipynb"``.
NOTEBOOK_LINK = re.compile(r"(\]\(|href=\")(?!https?:|/)([^)\"#]+)\.ipynb(?=[)#\"])")
#: Loopback URLs: a lesson's servers, which are gone when the page is read.
LOOPBACK = re.compile(r"(https?|wss?)://(127\.0\.0\.1|localhost|\[::1\])[:/]")
#: Markup that would need MathJax or mermaid from a CDN.
NEEDS_NETWORK = {
    "LaTeX math (MathJax)": re.compile(
        r"\$\$|\\\(|\\\[|\\begin\{|(?<![\w$\\])\$[^\s$][^$\n]*?[^\s$]\$(?![\w$])"
    ),
    "a mermaid diagram": re.compile(r"```mermaid"),
}

#: The page template: nbconvert's lab template with local scripts and a navigation bar.
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}
{%- if "widgets" in nb.metadata -%}
<script src="{{ resources.site.static }}/require.js"></script>
<script>
requirejs.config({paths: {anywidget: "{{ resources.site.static }}/anywidget/index"}});
</script>
{%- endif -%}
{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style>
nav.wslab-site { font: 14px/1.6 system-ui, sans-serif; padding: 6px 12px;
  border-bottom: 1px solid #ddd; background: #f7f7f7; }
nav.wslab-site a { margin-right: 0.6em; }
nav.wslab-site .here { font-weight: bold; margin-right: 0.6em; }
/* A chat window here is a saved copy, not one whose kernel went away. */
body.jp-Notebook .wslab-chat .jupyter-widgets-disconnected .wslab-gone { display: none; }
body.jp-Notebook .wslab-chat .jupyter-widgets-disconnected .wslab-live {
  display: inline; color: #555; }
body.jp-Notebook .wslab-chat .jupyter-widgets-disconnected .wslab-live::after {
  content: " (a saved copy: run the lesson in Jupyter to chat)"; }
</style>
{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="wslab-site">{{ resources.site.nav }}</nav>
{%- endblock body_header -%}
{% block footer_js %}
{%- if "widgets" in nb.metadata -%}
<script src="{{ resources.site.static }}/html-manager/embed-amd.js"></script>
{%- endif -%}
{% endblock footer_js %}
"""


class SiteError(Exception):
    """The site cannot be built; the message says why, in one line."""


@dataclass(frozen=True)
class Page:
    """One notebook of the course and where its page goes in the site."""

    source: Path
    #: Path of the page inside the site, e.g. ``03-frame-bytes.html``.
    target: Path
    #: Short name in the navigation bar.
    label: str

    @property
    def up(self) -> str:
        """The relative path from this page back to the site's root."""
        return "../" * (len(self.target.parts) - 1)


def course_pages() -> list[Page]:
    """The lessons in order, then the exercises' student release."""
    pages = [
        Page(path, Path(f"{path.stem}.html"), path.stem[:2])
        for path in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    ]
    for path in sorted(RELEASE.glob("*/*.ipynb")):
        relative = path.relative_to(NOTEBOOKS).with_suffix(".html")
        pages.append(Page(path, relative, f"exercise {path.parent.name[:2]}"))
    return pages


def navigation(page: Page, pages: list[Page]) -> str:
    """The navigation bar of ``page``: start, every lesson, every exercise."""
    links = [f'<a href="{page.up}index.html">wslab course</a>']
    for other in pages:
        if other == page:
            links.append(f'<span class="here">{other.label}</span>')
        else:
            title = other.source.stem
            links.append(
                f'<a href="{page.up}{other.target.as_posix()}" title="{title}">{other.label}</a>'
            )
    return " ".join(links)


# --- front-end packages from the npm registry ------------------------------------


def npm_package(name: str, version: str, cache: Path = NPM_CACHE) -> Path:
    """Unpack ``name@version`` from the npm registry (once; cached) and return its folder."""
    unpacked = cache / f"{name.replace('/', '+')}@{version}"
    if (unpacked / "package.json").exists():
        return unpacked
    if shutil.which("npm") is None:
        raise SiteError("npm is needed once to fetch the widget manager: install node and npm")
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--pack-destination", str(cache), "--silent"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SiteError(f"npm pack {name}@{version} failed (no network for npm?): {last}")
    tarball = cache / done.stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory(dir=cache) as tmp, tarfile.open(tarball) as archive:
        archive.extractall(tmp, filter="data")
        try:
            Path(tmp, "package").rename(unpacked)
        except OSError:  # another build unpacked it meanwhile
            if not (unpacked / "package.json").exists():
                raise
    tarball.unlink(missing_ok=True)
    return unpacked


def copy_front_end(out: Path) -> None:
    """Copy require.js, the widgets HTML manager and anywidget into ``out/_static``."""
    static = out / STATIC
    for name, (version, wanted) in NPM_PACKAGES.items():
        package = npm_package(name, version)
        target = static / name.split("/")[-1]
        if name == "@jupyter-widgets/html-manager":  # with its fonts and images
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(package / "dist", target, ignore=shutil.ignore_patterns(*BUNDLED))
        elif name == "requirejs":
            static.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(package / wanted, static / "require.js")
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(package / wanted, target / Path(wanted).name)


# --- notebooks --------------------------------------------------------------------


def has_widgets(notebook: Any) -> bool:
    """Whether any output of ``notebook`` is a widget."""
    return any(WIDGET_VIEW in output.get("data", {}) for output in _outputs(notebook))


def _outputs(notebook: Any) -> Iterator[Any]:
    for cell in notebook.cells:
        if cell.cell_type == "code":
            yield from cell.outputs


#: The last cell of an execution for the site (removed again): it waits for the widget
#: updates that a lesson's background threads batch (new lines in a chat window), then
#: prints every widget's state. nbclient records only updates that arrive while their
#: own cell runs, so it would miss those.
STATE_CELL = """\
import json, time, ipywidgets
time.sleep(0.5)
print(json.dumps(ipywidgets.Widget.get_manager_state()))"""


def execute_for_widgets(notebook: Any, timeout: int = 60) -> float:
    """Run ``notebook`` in a fresh kernel and store its widgets' state; return seconds."""
    notebook.cells.append(nbformat.v4.new_code_cell(STATE_CELL))
    started = time.monotonic()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        store_widget_state=False,
    ).execute()
    last = notebook.cells.pop()
    printed = "".join(o.get("text", "") for o in last.outputs if o.get("name") == "stdout")
    notebook.metadata["widgets"] = {WIDGET_STATE: json.loads(printed)}
    return time.monotonic() - started


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _links_to_loopback(model_id: str, state: dict[str, Any], seen: set[str]) -> bool:
    """Whether the widget ``model_id`` or any widget inside it links to a loopback server."""
    if model_id in seen or model_id not in state:
        return False
    seen.add(model_id)
    for text in _strings(state[model_id].get("state", {})):
        if text.startswith("IPY_MODEL_"):
            if _links_to_loopback(text.removeprefix("IPY_MODEL_"), state, seen):
                return True
        elif LOOPBACK.search(text):
            return True
    return False


def drop_dead_links(notebook: Any) -> None:
    """Show the fallback text of widgets whose links need a lesson's server."""
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for output in _outputs(notebook):
        view = output.get("data", {}).get(WIDGET_VIEW)
        if view and _links_to_loopback(view["model_id"], state, set()):
            del output["data"][WIDGET_VIEW]


def check_offline(page: Page, notebook: Any) -> None:
    """Refuse markup that only renders with a script from a CDN."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for what, pattern in NEEDS_NETWORK.items():
            if pattern.search(cell.source):
                raise SiteError(
                    f"{page.source.relative_to(ROOT)} has {what}, which the offline site "
                    "cannot render: use Unicode, a table or a picture instead"
                )


def link_pages(notebook: Any) -> None:
    """Turn links to notebooks into links to their pages (markdown and HTML outputs)."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = NOTEBOOK_LINK.sub(r"\1\2.html", cell.source)
    for output in _outputs(notebook):
        data = output.get("data", {})
        if "text/html" in data:
            data["text/html"] = NOTEBOOK_LINK.sub(r"\1\2.html", data["text/html"])


def exporter() -> HTMLExporter:
    """nbconvert's lab template, with the site's page template on top."""
    html = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"wslab-site.html.j2": TEMPLATE})],
    )
    html.template_file = "wslab-site.html.j2"
    return html


def render(page: Page, pages: list[Page], out: Path, html: HTMLExporter, execute: bool) -> str:
    """Write one page; return a short line for the build log."""
    notebook = nbformat.read(page.source, as_version=4)
    check_offline(page, notebook)
    note = ""
    if execute and has_widgets(notebook):
        note = f"  (executed for its widgets in {execute_for_widgets(notebook):.1f} s)"
        drop_dead_links(notebook)
    link_pages(notebook)
    resources = {
        "metadata": {"name": page.source.stem},
        "site": {"static": page.up + STATIC, "nav": navigation(page, pages)},
    }
    body, _ = html.from_notebook_node(notebook, resources=resources)
    target = out / page.target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return f"{target.relative_to(out)}{note}"


def build(out: Path, *, execute: bool = True) -> list[Path]:
    """Build the whole site into ``out``; return the pages written."""
    pages = course_pages()
    if not pages:
        raise SiteError(f"no lessons found in {NOTEBOOKS}")
    copy_front_end(out)
    html = exporter()
    for page in pages:
        print(render(page, pages, out, html, execute), flush=True)
    shutil.copyfile(out / pages[0].target, out / "index.html")
    return [out / "index.html", *(out / page.target for page in pages)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "html")
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="render stored outputs only (widgets then show their 'run this cell' text)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        written = build(args.out, execute=not args.no_execute)
    except SiteError as error:
        print(f"render_html: {error}", file=sys.stderr)
        return 1
    print(f"{len(written)} pages in {args.out} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
