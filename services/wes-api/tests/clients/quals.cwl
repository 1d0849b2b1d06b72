# Only for wes-client's submission, which reads a CWL file's cwlVersion before it posts.
cwlVersion: v1.2
class: Workflow
inputs: []
outputs: []
steps: []
