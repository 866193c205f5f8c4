"""Pod building blocks of the node agent: from a Pod's spec to a runtime's ContainerSpec.

Each module resolves one part, with Kubernetes' rules and error messages:

* :mod:`.images` -- the node's image catalog (default command, working dir, env);
* :mod:`.command` -- argv from image defaults, command and args;
* :mod:`.expand` -- ``$(VAR)`` expansion;
* :mod:`.env` -- the container's environment (values, ConfigMaps, Secrets, downward API);
* :mod:`.volumes` -- emptyDir, configMap, secret and hostPath volumes on disk, and mounts;
* :mod:`.limits` -- cpu and memory limits as integers;
* :mod:`.sources` -- the seam through which ConfigMaps and Secrets are looked up;
* :mod:`.errors` -- the typed errors and the Kubernetes reasons they are reported with.
"""
