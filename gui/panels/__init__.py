"""The GUI's panels: widgets with ``refresh(model)`` drawing from :class:`gui.model.ResultsModel`."""
