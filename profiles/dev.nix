# dev: everyday tools for working inside the VM.
{ pkgs, ... }:
{
  programs.neovim = {
    enable = true;
    defaultEditor = true;
    viAlias = true;
    vimAlias = true;
  };
  programs.tmux.enable = true;
  programs.git = {
    enable = true;
    lfs.enable = true;
  };

  environment.systemPackages = [
    pkgs.ripgrep
    pkgs.fd
    pkgs.jq
    pkgs.yq-go
    pkgs.htop
    pkgs.btop
    pkgs.fzf
    pkgs.bat
    pkgs.tree
    pkgs.file
    pkgs.less
    pkgs.wget
    pkgs.unzip
    pkgs.zip
    pkgs.gnumake
    pkgs.rsync
    pkgs.lsof
    pkgs.strace
    pkgs.ncdu
    pkgs.shellcheck
    pkgs.gh
    pkgs.man-pages
  ];
}
