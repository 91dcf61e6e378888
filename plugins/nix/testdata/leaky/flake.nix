{
  description = "A flake whose image build starts a process in a session of its own (a daemon) and fails, for vmflow's test that a build leaves nothing running.";
  outputs = { self }: {
    lib.profiles = { core = { requires = [ ]; }; };
    lib.mkImage = { profiles, system ? "x86_64-linux" }:
      derivation {
        name = "vmflow-test-leaky-image";
        inherit system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        # A new derivation for each VMFLOW_TEST_STAMP (read with --impure).
        stamp = builtins.getEnv "VMFLOW_TEST_STAMP";
        args = [ "-c" "setsid sleep 601 </dev/null >/dev/null 2>&1 & sleep 1; echo 'a daemon started; failing'; exit 1" ];
      };
  };
}
