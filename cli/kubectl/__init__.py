"""kubectl's verbs for Raftsman: ``raftsman get/apply/create/delete/label/annotate/patch/
scale/cordon/uncordon/taint/api-resources`` (and the node agent's ``logs/exec/top``).

Small modules, one topic each: :mod:`.config` finds the API server, :mod:`.session` runs
a verb against it and turns failures into kubectl's one-line errors, :mod:`.resources`
parses ``KIND NAME`` / ``kind/name`` arguments, :mod:`.manifests` reads ``-f`` files,
:mod:`.printers` renders tables and ``-o`` formats, and one module per verb.
"""

from __future__ import annotations

# Verb name -> "module:attribute" of its click command, imported only when the verb runs
# (see cli.main's lazy group).
COMMANDS: dict[str, str] = {
    "annotate": "cli.kubectl.label:annotate",
    "api-resources": "cli.kubectl.apiresources:api_resources",
    "apply": "cli.kubectl.apply:apply",
    "cluster-info": "cli.kubectl.clusterinfo:cluster_info",
    "completion": "cli.kubectl.completion:completion",
    "cordon": "cli.kubectl.nodes:cordon",
    "create": "cli.kubectl.apply:create",
    "delete": "cli.kubectl.delete:delete",
    "describe": "cli.kubectl.describe:describe",
    "drain": "cli.kubectl.drain:drain",
    "edit": "cli.kubectl.edit:edit",
    "events": "cli.kubectl.events:events",
    "exec": "cli.kubectl.exec:exec_",
    "explain": "cli.kubectl.explain:explain",
    "get": "cli.kubectl.get:get",
    "label": "cli.kubectl.label:label",
    "logs": "cli.kubectl.logs:logs",
    "patch": "cli.kubectl.patch:patch",
    "replace": "cli.kubectl.apply:replace",
    "rollout": "cli.kubectl.rollout:rollout",
    "scale": "cli.kubectl.scale:scale",
    "set": "cli.kubectl.setcmd:set_",
    "taint": "cli.kubectl.nodes:taint",
    "top": "cli.kubectl.top:top",
    "uncordon": "cli.kubectl.nodes:uncordon",
}
