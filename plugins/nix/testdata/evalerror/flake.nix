{
  description = "A flake whose image does not evaluate, for vmflow's tests.";
  outputs = { self }: {
    lib.profiles = { core = { requires = [ ]; }; };
    lib.mkImage = { profiles, system ? "x86_64-linux" }:
      throw "this test flake refuses to evaluate ${builtins.concatStringsSep "," profiles}";
  };
}
