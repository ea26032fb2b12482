from report.daemon.client import run

run()
