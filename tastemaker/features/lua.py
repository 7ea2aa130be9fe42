"""Lua shared by the feature store's scripts."""

#: Lua: a string of values joined by \31 (one argument, cheap to send) back into a table
SPLIT_LUA = """
local function split(packed)
  local out, i = {}, 1
  while true do
    local j = string.find(packed, '\\31', i, true)
    if not j then out[#out + 1] = string.sub(packed, i); return out end
    out[#out + 1] = string.sub(packed, i, j - 1)
    i = j + 1
  end
end
"""
