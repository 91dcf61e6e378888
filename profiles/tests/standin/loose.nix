# The type the stand-in gives to every option it does not declare:
# definitions merge the way NixOS' own types would for the values profiles
# set (lists are concatenated, attribute sets merged attribute by
# attribute, strings joined as lines), otherwise the last definition wins.
# mkIf, mkForce and mkDefault work at every level, as in NixOS.
lib:
let
  inherit (lib) types;
  loose = lib.mkOptionType {
    name = "standin-loose";
    description = "anything (stand-in)";
    merge = loc: defs:
      let
        values = map (d: d.value) defs;
        plainSet = v: builtins.isAttrs v && !(lib.isDerivation v) && !(v ? outPath);
      in
      if lib.all plainSet values then (types.lazyAttrsOf loose).merge loc defs
      else if lib.all builtins.isList values then lib.concatLists values
      else if lib.all builtins.isString values then lib.concatStringsSep "\n" values
      else (lib.last defs).value;
  };
in
loose
