from report.client import run

run()
