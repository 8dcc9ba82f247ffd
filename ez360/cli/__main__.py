from ez360.cli.app import app

app()
