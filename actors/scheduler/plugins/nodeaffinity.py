"""Node selector terms against a node: ``nodeSelector`` and node affinity.

Kubernetes' semantics, exactly:

* ``spec.nodeSelector``: every pair must be a label of the node;
* required node affinity: the ``nodeSelectorTerms`` are ORed; the requirements of one
  term (``matchExpressions`` and ``matchFields``) are ANDed; a term with no requirement
  matches no node, and so does a list of no terms;
* operators: ``In`` / ``NotIn`` (a label value among / not among ``values``; ``NotIn``
  also holds when the label is absent), ``Exists`` / ``DoesNotExist``, and ``Gt`` /
  ``Lt``, which compare the label and the single value as integers (a label that is
  absent or not an integer does not match);
* ``matchFields`` support ``metadata.name`` with ``In`` / ``NotIn``, as in Kubernetes.

Preferred terms add their ``weight`` to a node's score when they match (:mod:`.scores`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["requirement_matches", "selector_matches_node", "term_matches"]


def _integer(text: str) -> int | None:
    try:
        return int(text, 10)
    except ValueError:
        return None


def requirement_matches(req: Any, labels: Mapping[str, str]) -> bool:
    """One ``NodeSelectorRequirement`` against ``labels``; unknown operators never match."""
    op = req.operator
    present = req.key in labels
    if op == "In":
        return present and labels[req.key] in req.values
    if op == "NotIn":
        return not present or labels[req.key] not in req.values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(req.values) != 1:
            return False
        have, want = _integer(labels[req.key]), _integer(req.values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: Any, labels: Mapping[str, str], node_name: str) -> bool:
    """One ``NodeSelectorTerm``: every requirement holds; an empty term matches nothing."""
    if not term.match_expressions and not term.match_fields:
        return False
    for req in term.match_expressions:
        if not requirement_matches(req, labels):
            return False
    for req in term.match_fields:
        if req.key != "metadata.name" or not requirement_matches(req, {"metadata.name": node_name}):
            return False
    return True


def selector_matches_node(selector: Any, labels: Mapping[str, str], node_name: str) -> bool:
    """A ``NodeSelector``: any of its terms matches."""
    return any(term_matches(t, labels, node_name) for t in selector.node_selector_terms)
