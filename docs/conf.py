"""Sphinx configuration of the sk_keras_digits documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html``. The gallery
(``../examples``) runs at build time, so TensorFlow is imported here once, as
the ``sk-keras-digits`` command imports it: with its C++ start-up log kept off
the build's output. On JAX too, where it is installed: the network search's
grid clones Keras optimizers, and Keras' pickling asks whether each object is
one of TensorFlow's, importing it.
"""

import importlib.util
import os
import sys
from pathlib import Path

# Quiet TensorFlow's C++ logging; set before the gallery imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import sk_keras_digits  # noqa: E402
from sk_keras_digits._cli._job import (  # noqa: E402
    import_backend_quietly,
    stderr_captured,
)
from sk_keras_digits._cli._parser import build_parser  # noqa: E402

import_backend_quietly()
if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow"):
    with stderr_captured():
        import tensorflow  # noqa: F401

project = "sk_keras_digits"
author = "sk_keras_digits developers"
copyright = "sk_keras_digits developers"  # noqa: A001
version = release = sk_keras_digits.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
# benchmark_table.rst is included by performance.rst, not a page of its own.
exclude_patterns = ["_build", "benchmark_table.rst", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"

# -- autodoc, autosummary, numpydoc ------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- sphinx-gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sk_keras_digits",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"sk_keras_digits": None},
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sk_keras_digits {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"], "index": [], "getting_started": []}
html_static_path = []
html_show_sourcelink = False


# -- the command line's --help, for command_line.rst ---------------------------
def _write_cli_help():
    out = HERE / "gen_modules" / "cli_help.txt"
    out.parent.mkdir(exist_ok=True)
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # argparse wraps the help to the terminal width
    try:
        text = build_parser().format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


_write_cli_help()
