"""The processes the ``report`` command keeps running between builds, apart from the pipeline:
the command's front (:mod:`report.daemon.client`), the build server it hands builds to
(:mod:`report.daemon.server`), the user's pool of PDF workers (:mod:`report.daemon.pool`), and
what they share (:mod:`report.daemon.settings`: how long they wait, their names, and how
``report status`` and ``report stop`` find them).

This package imports nothing: the command's front runs before it knows whether it will import
the builder at all.
"""
