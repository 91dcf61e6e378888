{
  description = "A flake whose image build says one line and then nothing for ten minutes, for vmflow's tests of a silent build.";
  outputs = { self }: {
    lib.profiles = { core = { requires = [ ]; }; };
    lib.mkImage = { profiles, system ? "x86_64-linux" }:
      derivation {
        name = "vmflow-test-silent-image";
        inherit system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        # A new derivation for each VMFLOW_TEST_STAMP (read with --impure):
        # each test really builds, and two test runs never share a build.
        stamp = builtins.getEnv "VMFLOW_TEST_STAMP";
        args = [ "-c" "echo 'starting a build that goes quiet'; sleep 600; mkdir $out" ];
      };
  };
}
