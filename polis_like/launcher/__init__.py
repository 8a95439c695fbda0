"""The launcher: the ``polis-like`` command and the processes it starts.

The one layer allowed to import the applications (``server`` and ``worker``): the library
below it (``polis_like.math``, ``io``, ``storage``) never does.
"""
