func.func @f(%x: tensor<?x?x8xf32>, %w: tensor<6x4xf32>) -> tensor<?x?x8xf32> {
  %y = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<6x4xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}
