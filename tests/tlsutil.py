"""Throwaway certificate authorities for TLS tests, made with the openssl command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from node.tools.local_cluster import TlsFiles


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> TlsFiles:
    """A new CA and one certificate it signs for 127.0.0.1 (server and client use)."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", f"/CN={name}-ca", cwd=folder)
    _openssl("req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", f"/CN={name}-node", cwd=folder)
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    sign = ("-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "ext.cnf")
    _openssl("x509", "-req", "-in", "node.csr", *sign, "-out", "node.pem", "-days", "2", cwd=folder)
    return TlsFiles(cert=folder / "node.pem", key=folder / "node.key", ca=folder / "ca.pem")
