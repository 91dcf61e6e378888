# Profile names -> the ordered list of profiles an image is made of.
#
#   resolve = import ./lib/resolve.nix (import ./profiles.nix);
#   resolve [ "nvidia" "dev" ]   # => [ "core" "docker" "nvidia" "dev" ]
#
# `core` always comes first, every profile comes after the ones it
# requires, each name appears once. Unknown names and dependency cycles are
# errors that name the culprit. Builtins only, so it evaluates without
# nixpkgs:
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./profiles/lib/resolve.nix (import ./profiles/profiles.nix) [ "nvidia" ]'
catalog:
let
  known = builtins.concatStringsSep ", " (builtins.attrNames catalog);

  # Depth-first: `path` is the chain being visited (for cycles), `done` the
  # result so far.
  visit = path: done: name:
    if !(builtins.isString name) then
      throw "vmflow: a profile name must be a string"
    else if builtins.elem name done then
      done
    else if builtins.elem name path then
      throw "vmflow: profiles require each other in a cycle: ${builtins.concatStringsSep " -> " (path ++ [ name ])}"
    else if !(builtins.hasAttr name catalog) then
      throw "vmflow: unknown profile \"${name}\"${
        if path == [ ] then "" else " (required by ${builtins.elemAt path (builtins.length path - 1)})"
      }; the known profiles are: ${known}"
    else
      (builtins.foldl' (visit (path ++ [ name ])) done (catalog.${name}.requires or [ ])) ++ [ name ];
in
names:
if !(builtins.isList names) then
  throw "vmflow: profiles must be a list of names, like [ \"dev\" \"docker\" ]"
else
  builtins.foldl' (visit [ ]) [ ] ([ "core" ] ++ names)
