"""Run from outside the checkout with the installed wheel: the package carries its data files."""

from importlib.resources import files

import stealth_sessions
from stealth_sessions import store

assert "site-packages" in stealth_sessions.__file__, stealth_sessions.__file__
package = files("stealth_sessions")
for name in (
    "py.typed",
    "migrations/0001_initial.py",
    "locale/fr/LC_MESSAGES/django.mo",  # compiled: no gettext needed where it is installed
    "templates/stealth_sessions/admin/change_list.html",
):
    assert package.joinpath(name).is_file(), name
scripts = {name: store.script_source(name) for name in store.SCRIPT_NAMES}
assert scripts and all("redis.call" in source for source in scripts.values())
print(f"wheel OK: {stealth_sessions.__file__}, {len(scripts)} Lua scripts")
