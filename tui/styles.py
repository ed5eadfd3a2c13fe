"""A stylesheet that keeps what it parsed while the theme stays the same.

Textual refreshes the CSS (``App.refresh_css``) on every first visit of a mode, twice: each time
it sets the theme's variables again, which empties the stylesheet's parse cache, and re-parses
every source (``app.tcss`` and the ``DEFAULT_CSS`` of every widget class shown so far) in a
fresh stylesheet, with a cache of its own. With the variables unchanged the rules come out the
same: this stylesheet keeps its cache then, and re-parses in place, so that only sources not
seen before are parsed. A new theme (other variables) empties the cache, as in Textual.
"""

from __future__ import annotations

from textual.css.stylesheet import Stylesheet


class ThemeCachedStylesheet(Stylesheet):
    def set_variables(self, variables: dict[str, str]) -> None:
        if variables != getattr(self, "_variables", None):
            super().set_variables(variables)

    def reparse(self) -> None:
        # parse() replaces the rules only once every source parsed (else it raises, keeping
        # the rules in force), which is what Textual's fresh stylesheet is for
        self.parse()
