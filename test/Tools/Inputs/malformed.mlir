func.func @f(%x: tensor<?x?x8xf32> {
  return
}
