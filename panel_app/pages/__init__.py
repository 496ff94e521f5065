"""One module per dashboard page; `panel_app.app.PAGES` lists them in sidebar order."""
