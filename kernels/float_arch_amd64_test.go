package kernels

const isAMD64 = true
