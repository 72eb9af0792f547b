#!/bin/sh
# Bring up a one-node Slurm (munge, slurmctld, slurmd) on this host for the bootstrap tests.
# Idempotent; every wait is bounded. Exits 0 when 'srun -n1 true' works.
set -u
die() { echo "slurm-up: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
fi
H=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2/1024) - 256}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null
chmod 0400 /etc/munge/munge.key
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=zr
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$H CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
printf 'ConstrainCores=no\n' > /etc/slurm/cgroup.conf
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force \
    || die "munged did not start"
pgrep -x slurmctld >/dev/null || slurmctld || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
pgrep -x slurmd >/dev/null || slurmd || die "slurmd did not start (see /var/log/slurm/slurmd.log)"
i=0
while [ $i -lt 30 ]; do
    scontrol update nodename="$H" state=resume >/dev/null 2>&1
    if timeout 20 srun -n1 true >/dev/null 2>&1; then
        echo "slurm-up: srun works on $H"
        exit 0
    fi
    i=$((i + 1)); sleep 1
done
die "srun -n1 true does not work after 30 tries; see /var/log/slurm/*.log"
