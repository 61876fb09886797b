"""The operator command line (``collections``, also ``python starter.py``).

    main.py      the app: settings once, parser errors, exit codes, entry points
    session.py   settings, Temporal client and database shared by the commands
    events.py    one command per event type, and emit
    ingest.py    ingest FILE|- with a Rich progress bar
    cases.py     status, show, cases
    show.py      the readable case page
    admin.py     migrate, search-attributes, settings, verify-evidence, codec-server, new-payload-key
    render.py    Rich output (NO_COLOR and non-terminals respected), times, JSON
    errors.py    exit codes; one line instead of a traceback
"""
