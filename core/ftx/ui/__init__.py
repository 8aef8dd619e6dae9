"""``ftx ui``: a local web app to launch, watch, compare and try runs (the ``ui`` extra).

Starlette serves server-rendered Jinja2 pages with a little vanilla JavaScript
(``static/app.js``): no build step, nothing fetched from another site. Everything a page shows
comes from the run directories under one runs root and from the CLI's own functions (validation
by :func:`ftx.runner.prepare`, the compare report's rows, the planner, ``ftx chat``'s and
``ftx eval``'s functions); runs are started as ``ftx run`` processes.

Modules: :mod:`~ftx.ui.app` (the app), :mod:`~ftx.ui.security` (token, CSRF, run names),
:mod:`~ftx.ui.runs` (the run index and statuses), :mod:`~ftx.ui.events` (live state, SSE),
:mod:`~ftx.ui.form` (the new-run form), :mod:`~ftx.ui.launcher` (start, stop, resume), and one
``pages_*`` module per group of pages. Import :func:`ftx.ui.app.create_app`; importing this
package alone imports nothing (not even Starlette).
"""
