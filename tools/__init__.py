"""The project's command-line tools, run from the repository root as modules
(``python -m tools.bench``, ``python -m tools.book``, ...), so that both this
package and `d2lsupport` import from the checkout without path manipulation."""
