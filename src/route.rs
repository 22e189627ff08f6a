//! `--route [KEY...]`: prints which server each key goes to,
//! `POOL<TAB>KEY<TAB>SERVER` per pool and key.
