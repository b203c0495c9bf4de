"""Views of :class:`~headwidget.HeadScores`: the Jupyter widget and what it writes.

- :mod:`.widget`: ``HeadImportanceGrid``, the anywidget (front end in ``js/``, bundled into
  ``headwidget/static/``);
- :mod:`.live`: scoring a model inside the grid; :mod:`.bundle`: the front end;
  :mod:`.trait_data`: what the grid sends the browser; :mod:`.profile`: the linked bar chart;
- :mod:`.files`: the grid as a self-contained HTML page or a static image;
- :mod:`.plotting`: static matplotlib figures (``HeadScores.plot``, ``grid.save``);
- :mod:`.compare`: two score sets side by side or their difference;
- :mod:`.categories`: the category overlays (which heads serve 2, 3, 4 categories);
- :mod:`.drill`: a head's examples and attention pattern, for the drill-down;
- :mod:`.roles`, :mod:`.grid_roles`: the heads' roles on the map (glyphs, filter, Roles tab);
  :mod:`.writes`: what a head writes, for the drill-down.

The ``headwidget`` command (:mod:`headwidget.cli`) is the view from a shell.
"""
