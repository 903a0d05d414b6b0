from taxifare_cli.cli.main import run

run()
