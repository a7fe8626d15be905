"""Throwaway TLS material for the tests, made with the openssl command line
in a temporary folder: a CA, a server certificate for localhost and
127.0.0.1, client certificates (one valid, one expired, one not yet valid,
one from a foreign CA). Nothing here is ever a live secret."""
import os
import subprocess


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Material:
    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.ca = self._ca("ca", "courier test CA")
        self.foreign_ca = self._ca("foreign-ca", "some other CA")
        self.server = self.issue("server", "localhost", san="DNS:localhost,IP:127.0.0.1", server=True)
        self.wrong_host = self.issue("wrong-host", "elsewhere.invalid", san="DNS:elsewhere.invalid", server=True)
        self.client = self.issue("client", "lab.hospital.example")
        self.other_client = self.issue("other-client", "ward.hospital.example")
        self.unknown_client = self.issue("unknown-client", "stranger.hospital.example")
        self.foreign_client = self.issue("foreign-client", "lab.hospital.example", ca="foreign-ca")
        self.expired = self.issue("expired", "lab.hospital.example", dates=("200101000000Z", "210101000000Z"))
        self.not_yet_valid = self.issue("future", "lab.hospital.example", dates=("450101000000Z", "460101000000Z"))

    def path(self, name):
        return os.path.join(self.folder, name)

    def _ca(self, name, subject):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".pem", "-days", "30", "-subj", "/CN=" + subject,
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=self.folder)
        return self.path(name + ".pem")

    def issue(self, name, common_name, san=None, server=False, ca="ca", dates=None):
        """Returns (certificate, key) paths."""
        san = san or "DNS:" + common_name
        usage = "serverAuth" if server else "clientAuth"
        with open(self.path(name + ".ext"), "w") as f:
            f.write(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + common_name, cwd=self.folder)
        if dates is None:
            _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                     "-CAcreateserial", "-days", "30", "-extfile", name + ".ext", "-out", name + ".pem",
                     cwd=self.folder)
        else:
            # Only `openssl ca` sets arbitrary validity dates.
            db = self.path(name + ".db")
            open(db, "w").close()
            with open(self.path(name + ".cnf"), "w") as f:
                f.write(f"[ca]\ndefault_ca=test\n[test]\ndatabase={db}\nnew_certs_dir={self.folder}\n"
                        f"certificate={self.path(ca + '.pem')}\nprivate_key={self.path(ca + '.key')}\n"
                        f"default_md=sha256\npolicy=any\nrand_serial=yes\nunique_subject=no\n"
                        f"[any]\ncommonName=supplied\n")
            _openssl("ca", "-batch", "-config", name + ".cnf", "-in", name + ".csr", "-out", name + ".pem",
                     "-startdate", dates[0], "-enddate", dates[1], "-extfile", name + ".ext", "-notext",
                     cwd=self.folder)
        return self.path(name + ".pem"), self.path(name + ".key")
