# The profiles of vmflow's offline test flake, in the same shape as
# profiles/profiles.nix: name → { requires = [ … ]; }.
{
  core = { requires = [ ]; };
  dev = { requires = [ ]; };
  docker = { requires = [ ]; };
  nvidia = { requires = [ "docker" ]; };
  # Its build fails on purpose, to show nix's error.
  broken = { requires = [ ]; };
}
