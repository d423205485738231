"""OpenPGP keys for the bad-key cases, made at test time with `gpg --batch` in a throw-away GNUPGHOME (nothing
secret is ever committed): a good repository key, another key, an expired one, a revoked one, a secret key,
two certificates in one file, truncated armor and binary garbage.
"""

import os
import random
import subprocess
import tempfile


class Keys:
    def __init__(self, folder):
        self.folder = folder
        self.home = tempfile.mkdtemp(prefix="gnupg-", dir=folder)
        os.chmod(self.home, 0o700)
        self.files = {}
        self.fpr = {}

    def gpg(self, *args, faked_time=None):
        cmd = ["gpg", "--homedir", self.home, "--batch", "--quiet", "--pinentry-mode", "loopback",
               "--passphrase", ""]
        if faked_time:
            cmd += ["--faked-system-time", faked_time]
        p = subprocess.run(cmd + list(args), capture_output=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("gpg %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
        return p.stdout

    def generate(self, uid, expire="1y", faked_time=None):
        self.gpg("--quick-gen-key", uid, "ed25519", "sign", expire, faked_time=faked_time)
        out = self.gpg("--with-colons", "--fingerprint", uid).decode()
        return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))

    def save(self, name, data):
        path = os.path.join(self.folder, name)
        with open(path, "wb") as f:
            f.write(data)
        self.files[name] = path
        return path

    def make_all(self):
        good = self.generate("Repository Test <repo@example.invalid>")
        other = self.generate("Someone Else <other@example.invalid>")
        # Made in 2020, valid one year: expired long ago.
        expired = self.generate("Expired Key <expired@example.invalid>", "1y", faked_time="20200101T000000")
        revoked = self.generate("Revoked Key <revoked@example.invalid>")
        self.fpr.update(good=good, other=other, expired=expired, revoked=revoked)

        # gpg stores a revocation certificate for each new key, its first line disarmed with ':'.
        rev_path = os.path.join(self.home, "openpgp-revocs.d", revoked + ".rev")
        with open(rev_path) as f:
            rev = f.read().replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
        self.save("revocation.asc", rev.encode())
        self.gpg("--import", self.files["revocation.asc"])

        armor = self.gpg("--armor", "--export", good)
        self.save("good.asc", armor)
        self.save("good.gpg", self.gpg("--export", good))
        self.save("other.asc", self.gpg("--armor", "--export", other))
        self.save("expired.asc", self.gpg("--armor", "--export", expired))
        self.save("revoked.asc", self.gpg("--armor", "--export", revoked))
        self.save("secret.asc", self.gpg("--armor", "--export-secret-keys", good))
        self.save("two-certs.asc", self.gpg("--armor", "--export", good, other))
        self.save("two-armors.asc", armor + self.gpg("--armor", "--export", other))
        self.save("truncated.asc", armor[: len(armor) // 2])
        lines = armor.decode().splitlines()
        # A body line altered in the middle: the armor checksum (or the packet parser) must notice.
        mid = len(lines) // 2
        lines[mid] = lines[mid][:-4] + ("AAAA" if not lines[mid].endswith("AAAA") else "BBBB")
        self.save("corrupt.asc", ("\n".join(lines) + "\n").encode())
        self.save("garbage.bin", bytes(random.Random(7).getrandbits(8) for _ in range(4096)))
        self.save("empty.asc", b"")
        return self
