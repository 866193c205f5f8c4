"""The whole-cluster benchmark's parts; the command is :mod:`bench.cluster_bench`.

:mod:`.launch` starts clusters (``raftsman up``/``down``, simulated nodes),
:mod:`.pods` stamps every pod's startup through a watch, :mod:`.apiprobe` times API calls
during a burst, :mod:`.procs` reads what each process costs, :mod:`.profile` runs py-spy,
:mod:`.scenarios` puts them together, :mod:`.report` writes the tables.
"""
