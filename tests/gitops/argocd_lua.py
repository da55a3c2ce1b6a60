"""Runs an Argo CD health script as Argo CD runs one from the argocd-cm ConfigMap.

Argo CD evaluates health scripts with gopher-lua (Lua 5.1). For a ConfigMap script without
`resource.customizations.useOpenLibs.<group>_<kind>` it opens only the base, package and table
libraries and a safe `os` (util/lua/lua.go: `SkipOpenLibs: !UseOpenLibs`, then OpenBase, OpenPackage,
OpenTable, OpenSafeOs). No `string` library means no string methods either: the string metatable
is set up by the string library. The object is the global `obj`; the chunk returns a table
`{status=..., message=...}`. Here the chunk runs in lupa's Lua 5.1 with exactly that environment.
"""

from __future__ import annotations

from typing import Any

import lupa.lua51 as lua51

# Names gopher-lua's base library defines, minus those that load code from files.
_BASE = (
    "assert error getmetatable ipairs next pairs pcall print rawequal rawget rawset select setmetatable "
    "tonumber tostring type unpack xpcall _VERSION getfenv setfenv loadstring"
).split()
_SAFE_OS = ("clock", "date", "difftime", "time")

_SANDBOX = """
local script, obj, openLibs, base, safeOs = ...
local env = {}
if openLibs then
  for name, value in pairs(_G) do env[name] = value end
else
  for _, name in ipairs(base) do env[name] = _G[name] end
  env.table = table
  env.package = package
  env.require = require
  env.os = {}
  for _, name in ipairs(safeOs) do env.os[name] = os[name] end
end
env._G = env
env.obj = obj
local chunk, err = loadstring(script, "=health.lua")
if chunk == nil then error(err, 0) end
setfenv(chunk, env)
local strings = getmetatable("")
local methods = strings.__index
if not openLibs then strings.__index = nil end
local ok, result = pcall(chunk)
strings.__index = methods
if not ok then error(result, 0) end
return result
"""


class LuaError(Exception):
    """The script failed (syntax error, a missing library, a nil index); Argo CD shows health Unknown."""


def run_health(script: str, obj: dict[str, Any], *, open_libs: bool = False) -> dict[str, Any]:
    """The table `script` returns for `obj`, as a dict (keys `status`, `message`).

    Raises LuaError when the script fails, or returns something other than a table.
    """
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    sandbox = runtime.execute(f"return function(...) {_SANDBOX} end")
    try:
        result = sandbox(
            script,
            runtime.table_from(obj, recursive=True),
            open_libs,
            runtime.table_from(_BASE),
            runtime.table_from(_SAFE_OS),
        )
    except lua51.LuaError as error:
        raise LuaError(str(error)) from error
    if lua51.lua_type(result) != "table":
        raise LuaError(f"expect table output from Lua script, not {lua51.lua_type(result) or type(result).__name__}")
    return {str(k): v for k, v in result.items()}
