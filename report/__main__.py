from report.cli import run

run()
