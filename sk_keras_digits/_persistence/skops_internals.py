"""The parts of ``skops`` the pipeline file uses beyond its public API.

``skops.io.loads`` parses a step's ``schema.json`` itself and reads the
archive's members from the zip. A pipeline file must first walk the schema
(:mod:`.skops_schema`) and count every member against ``max_bytes``
(:mod:`.pipeline_file`), so it builds a step from the schema it has checked
and the members it has read, with ``skops``' own machinery: the private names
of ``skops.io`` below, used nowhere else. A ``skops`` release that moves them
makes scikit-learn steps fail to load with a short refusal, never load
unchecked.
"""

from typing import NamedTuple

from .errors import Refused


class _Skops(NamedTuple):
    node_types: dict
    protocol: int
    get_tree: object
    audit_tree: object
    load_context: type


def _skops_io():
    """skops' node types and loader, or a refusal naming what is missing."""
    try:
        import skops.io  # noqa: F401  (registers the node classes)
        from skops.io._audit import NODE_TYPE_MAPPING, audit_tree, get_tree
        from skops.io._protocol import PROTOCOL
        from skops.io._utils import LoadContext
    except ImportError as exc:
        raise Refused(
            f"this version of skops cannot read pipeline steps here ({exc})."
        ) from exc
    return _Skops(NODE_TYPE_MAPPING, PROTOCOL, get_tree, audit_tree, LoadContext)


def current_protocol():
    """The ``skops`` protocol this version writes."""
    return _skops_io().protocol


def node_class(loader, protocol):
    """The class ``skops`` reads a ``loader`` node of ``protocol`` with, or None."""
    return _skops_io().node_types.get((loader, protocol))


def construct(schema, members, trusted):
    """The object a checked ``schema`` describes, built by ``skops``.

    Parameters
    ----------
    schema : dict
        The parsed ``schema.json``, already checked.
    members : dict of str to bytes
        The archive's array members, already read (each is read once).
    trusted : list of str
        The types ``skops`` may build; it audits the tree against them.
    """
    skops = _skops_io()
    context = skops.load_context(src=_Members(members), protocol=schema["protocol"])
    tree = skops.get_tree(schema, context, trusted=trusted)
    skops.audit_tree(tree, trusted=trusted)
    return tree.construct()


class _Members:
    """The members of a ``skops`` archive, already read: ``skops``' ``src``."""

    def __init__(self, content):
        self._content = content

    def read(self, name):
        return self._content.pop(name)
